"""Server-rendered pages of academy (HTML, English and Simplified Chinese)."""
