"""Scheduling: triggers on each region's calendar, one leader, decisions recorded."""
