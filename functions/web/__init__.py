"""The dashboard's presentation: templates, the pipeline diagram and how pages are rendered."""
