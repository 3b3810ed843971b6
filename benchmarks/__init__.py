"""Speed and memory figures. `make bench` runs every bench_*.py module's main()."""
