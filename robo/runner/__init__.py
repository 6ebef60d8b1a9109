"""Running a process version: browser, work items, bot context, declarative steps."""
