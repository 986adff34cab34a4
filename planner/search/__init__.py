"""Searching configurations: the vectorised grid over the physics, candidate ranking,
recommend, compare and the engine launch commands for a chosen configuration."""
