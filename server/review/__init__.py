"""回看 Review: a past day's state bands per window, and occupancy per hour."""
