"""The Kivy screens: one .kv layout and a thin handler per screen, each calling one service."""
