"""The list template (.xlsx), reading a filled list back, and spreadsheet exports."""
