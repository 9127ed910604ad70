"""HallWatch broker package."""
