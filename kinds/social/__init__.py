"""Social-media comment scraping: comments of politicians' pages, bursts during a scandal."""
