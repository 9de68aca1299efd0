"""Pure: the call book (live calls -> card writes) and the card fields."""
