"""Run reports: the JSON file CI gates read, the HTML page people read, the terminal summary."""
