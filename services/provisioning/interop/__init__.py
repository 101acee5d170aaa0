"""Interoperability clients: machines of national systems (FHIR, NCOVI) with credentials of
their own, issued by the city, and the client-credentials grant that gives them a scoped token."""
