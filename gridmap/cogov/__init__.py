"""Co-governance (共建共治): registrations (双报到), the three lists (三清单: needs, resources, projects)
and what is built on them. See docs/cogovernance.md."""
