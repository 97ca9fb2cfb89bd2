"""Commands, the main loop and process spawning."""
