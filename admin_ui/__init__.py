"""The staff and operator dashboard (server-rendered); built in the dashboard issue."""
