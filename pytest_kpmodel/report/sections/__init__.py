"""The report page's sections, one module each. A section's ``render(page)`` returns its HTML,
or "" when the report holds nothing for it (the page then leaves it out); ``figures`` has two,
``gallery`` and ``other``. Sections read only the report (``page.Page``) and render with
``markup``; they never see the run."""
