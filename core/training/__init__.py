"""Training of the models Earmark ships."""
