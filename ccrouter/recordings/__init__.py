"""Call recordings: which calls are recorded, the file linked to the card, playback, retention."""
