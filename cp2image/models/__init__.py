"""cp2image.models"""
