"""The FHIR R4 interconnection (circular 2.2): the national exchange reads reporting here.

- ``api.py``: the ``/api/fhir/...`` routes (authentication, pagination, the access log);
- ``resources.py``: the FHIR resources built from the read models;
- ``purposes.py``: powers by purpose, who may read person-level data and why.
"""
