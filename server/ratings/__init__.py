"""好差评 Ratings: ratings and tickets in; bad-rating work orders, their deadlines, alerts and statistics out."""
