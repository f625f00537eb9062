"""The jobs process: APScheduler wiring (scheduler.py) and one thin module per job."""
