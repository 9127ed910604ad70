"""HallWatch agent package."""
