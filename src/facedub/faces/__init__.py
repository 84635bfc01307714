"""Face detection, landmarks, alignment and identity."""
