"""The only package that knows SQLAlchemy."""
