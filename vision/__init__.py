"""HallWatch vision package."""
