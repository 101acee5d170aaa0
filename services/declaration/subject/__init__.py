"""Subject requests (issue 17, item 5): a person's declarations found by ID number or
phone, exported for them, erased early on a lawful request. ``service.py``: the use cases;
``routes.py``: the console pages and the JSON endpoints."""
