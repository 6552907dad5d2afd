"""One loader a format; `miodesk.text.documents` is the public entry point."""
