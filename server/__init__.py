"""HallWatch server package."""
