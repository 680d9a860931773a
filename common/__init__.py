"""Shared foundation of the four reproductions: datasets, protocols, metrics, neighbours, flags, export."""
