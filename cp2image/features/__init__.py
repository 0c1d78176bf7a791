"""cp2image.features"""
