"""One module per endpoint family; each method is a few lines over the client's generic calls."""
