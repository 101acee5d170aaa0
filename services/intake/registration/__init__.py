"""Registration at the public edge: what a unit sends, and the checks against spam."""
