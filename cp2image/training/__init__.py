"""cp2image.training"""
