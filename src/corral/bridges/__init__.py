"""Bridges: event and state sources that run as their own child processes of corral's
(Upstart's bridges, s6's adapters) and speak the control protocol (``base.py``)."""
