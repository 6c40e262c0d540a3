"""Business rules of academy, apart from HTTP: each module holds one area's operations."""
