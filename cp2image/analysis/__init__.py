"""cp2image.analysis"""
