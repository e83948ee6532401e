"""millinet simulator and Gymnasium environments (numpy, networkx, pydantic, gymnasium only)."""
