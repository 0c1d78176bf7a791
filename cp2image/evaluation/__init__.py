"""cp2image.evaluation"""
