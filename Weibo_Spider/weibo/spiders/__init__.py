"""Spiders: hot_topics."""
