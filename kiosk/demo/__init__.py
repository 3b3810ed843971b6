"""`kiosk demo`, a tool on top of the app: scripted residents drive the real UI headless through Kivy's input path."""
