"""HallWatch sensors package."""
