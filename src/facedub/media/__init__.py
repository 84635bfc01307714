"""Reading (and, in :mod:`facedub.media.writer`, writing) video and images."""

from facedub.media.reader import IMAGE_EXTENSIONS, Frame, MediaReader, expand_inputs, load_image, open_media

__all__ = ["IMAGE_EXTENSIONS", "Frame", "MediaReader", "expand_inputs", "load_image", "open_media"]
