"""Readable names, units and number formatting for CellProfiler feature names.

A biologist reads "Nucleus area 1,390 µm²", not "Nuclei_AreaShape_Area 3.29e+03". The
names follow CellProfiler's scheme `Compartment_Module_Measurement[_Channel][_params]`
(e.g. `Cells_Intensity_MeanIntensity_Actin`, `Nuclei_Texture_Contrast_DNA_3_00_256`,
`Cells_RadialDistribution_FracAtD_Tubulin_2of4`), so labels and units are derived by rule
from the name, not from a table of every feature: any dataset measured the CellProfiler
way gets labels, and a name the rules do not know still gets its words split apart.

Units (how CellProfiler measures, and how cp2image.features measures the same way):

- AreaShape areas are pixel counts, lengths and radii are pixels, Orientation is degrees;
  `format_value` converts pixels to µm with the dataset's pixel size (BBBC021: 0.65 µm/px);
- intensities are on CellProfiler's 0–1 scale (an 8-bit pixel value / 255), integrated
  intensities are that summed over the object's pixels; MassDisplacement is a distance (px);
- granularity is a percentage of the object's signal; texture, radial distribution,
  correlation and shape ratios have no unit.
"""
from __future__ import annotations

import math
import re
from typing import Literal

UnitKind = Literal["area", "length", "intensity", "integrated intensity", "angle", "percent", "unitless"]

COMPARTMENTS = {"Nuclei": "Nucleus", "Cells": "Cell", "Cytoplasm": "Cytoplasm"}
CHANNELS = {"DNA": "DNA", "Tubulin": "β-tubulin", "Actin": "F-actin"}

AREAS = {"Area": "area", "ConvexArea": "convex hull area", "BoundingBoxArea": "bounding-box area"}
LENGTHS = {
    "Perimeter": "perimeter", "MajorAxisLength": "major axis length", "MinorAxisLength": "minor axis length",
    "EquivalentDiameter": "equivalent diameter", "MaxFeretDiameter": "maximum Feret diameter",
    "MinFeretDiameter": "minimum Feret diameter", "MaximumRadius": "maximum radius", "MeanRadius": "mean radius",
    "MedianRadius": "median radius",
}
SHAPE_RATIOS = {
    "Eccentricity": "eccentricity", "Extent": "extent (area / bounding box)", "FormFactor": "form factor (roundness)",
    "Solidity": "solidity (area / convex area)", "Compactness": "compactness", "EulerNumber": "Euler number",
}
INTENSITIES = {  # CellProfiler measurement → words around the channel name
    "MeanIntensity": "mean {c} intensity", "MedianIntensity": "median {c} intensity",
    "MinIntensity": "minimum {c} intensity", "MaxIntensity": "maximum {c} intensity",
    "StdIntensity": "{c} intensity SD", "MADIntensity": "{c} intensity MAD",
    "LowerQuartileIntensity": "lower-quartile {c} intensity", "UpperQuartileIntensity": "upper-quartile {c} intensity",
    "IntegratedIntensity": "total {c} intensity",
}
TEXTURES = {
    "AngularSecondMoment": "angular second moment", "Contrast": "contrast", "Correlation": "correlation",
    "Variance": "variance", "InverseDifferenceMoment": "homogeneity", "SumAverage": "sum average",
    "SumVariance": "sum variance", "SumEntropy": "sum entropy", "Entropy": "entropy",
    "DifferenceVariance": "difference variance", "DifferenceEntropy": "difference entropy",
    "InfoMeas1": "information measure 1", "InfoMeas2": "information measure 2",
}
RADIAL = {"FracAtD": "fraction of {c} in ring {k} of {n}", "MeanFrac": "relative {c} density in ring {k} of {n}",
          "RadialCV": "{c} variation around ring {k} of {n}"}
COLOCALISATION = {"Correlation": "{a}–{b} correlation", "Slope": "{a}–{b} intensity slope",
                  "Overlap": "{a}–{b} overlap", "Manders": "Manders' {a} overlapping {b}",
                  "RWC": "rank-weighted {a} colocalisation with {b}"}

UNIT_SYMBOL = {"area": "µm²", "length": "µm", "angle": "°", "percent": "%", "intensity": "",
               "integrated intensity": "", "unitless": ""}
PIXEL_SYMBOL = {"area": "px²", "length": "px"}
INTENSITY_SCALE = "0–1 scale: pixel value / 255"


def _words(camel: str) -> str:
    """'MassDisplacement' → 'mass displacement' (the fallback for names the rules do not know)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel).replace("_", " ").lower()


def _channel(name: str) -> str:
    return CHANNELS.get(name, name)


def _parts(name: str) -> tuple[str, str, list[str]]:
    """(compartment, module, rest) of a CellProfiler name; ValueError for anything else."""
    if not isinstance(name, str) or name.count("_") < 2:
        raise ValueError(f"{name!r} is not a CellProfiler feature name (Compartment_Module_Measurement...)")
    compartment, module, *rest = name.split("_")
    return compartment, module, rest


def _describe(module: str, rest: list[str]) -> str:
    """The measurement in words, without the compartment."""
    head = rest[0]
    if module == "AreaShape":
        if head == "Zernike" and len(rest) == 3:
            return f"shape Zernike moment ({rest[1]}, {rest[2]})"
        for table in (AREAS, LENGTHS, SHAPE_RATIOS):
            if head in table:
                return table[head]
        if head == "Orientation":
            return "orientation"
        if head.startswith("Center"):
            return f"centre {head[-1].lower()}"
    if module == "Intensity" and len(rest) >= 2:
        channel = _channel(rest[1])
        if head == "MassDisplacement":
            return f"{channel} mass displacement"
        edge = head.endswith("Edge")
        core = head[:-4] if edge else head
        if core in INTENSITIES:
            return INTENSITIES[core].format(c=channel) + (" at the edge" if edge else "")
    if module == "Texture" and len(rest) >= 2:
        scale = f", scale {rest[2]} px" if len(rest) >= 3 else ""
        return f"{_channel(rest[1])} texture {TEXTURES.get(head, _words(head))}{scale}"
    if module == "Granularity" and len(rest) == 2:
        return f"{_channel(rest[1])} granularity, scale {rest[0]}"
    if module == "RadialDistribution" and len(rest) == 3 and "of" in rest[2]:
        k, n = rest[2].split("of")
        template = RADIAL.get(head, _words(head) + " of {c} in ring {k} of {n}")
        return template.format(c=_channel(rest[1]), k=k, n=n)
    if module == "Correlation" and len(rest) == 3:
        a, b = _channel(rest[1]), _channel(rest[2])
        return COLOCALISATION.get(head, _words(head) + " {a}–{b}").format(a=a, b=b)
    return " ".join([_words(module), *(_channel(r) if r in CHANNELS else _words(r) for r in rest)])


def readable_name(name: str) -> str:
    """A short plain-English label: `readable_name("Nuclei_AreaShape_Area") == "Nucleus area"`.

    Raises ValueError for a name that is not `Compartment_Module_Measurement...`.
    """
    compartment, module, rest = _parts(name)
    where = COMPARTMENTS.get(compartment, _words(compartment).capitalize())
    return f"{where} {_describe(module, rest)}"


def labelled(name: str) -> str:
    """The readable label followed by the CellProfiler name: "Nucleus area (Nuclei_AreaShape_Area)".

    Names that are not CellProfiler features are returned unchanged, so this is safe on any column.
    """
    try:
        return f"{readable_name(name)} ({name})"
    except ValueError:
        return str(name)


def unit_kind(name: str) -> UnitKind:
    """What a feature's number measures: an area or length in pixels, an intensity, an angle, or nothing."""
    _, module, rest = _parts(name)
    head = rest[0]
    if module == "AreaShape":
        if head in AREAS:
            return "area"
        if head in LENGTHS or head.startswith("Center"):
            return "length"
        if head == "Orientation":
            return "angle"
        return "unitless"
    if module == "Intensity":
        if head == "MassDisplacement":
            return "length"
        return "integrated intensity" if head.startswith("IntegratedIntensity") else "intensity"
    if module == "Granularity":
        return "percent"  # loss of mean intensity per opening step, in % of the object's signal
    return "unitless"


def unit_symbol(name: str, *, pixel_size_um: float | None) -> str:
    """The unit `format_value` writes: µm² / µm with a pixel size, px² / px without, ° or "" otherwise."""
    kind = unit_kind(name)
    if kind in PIXEL_SYMBOL and not pixel_size_um:
        return PIXEL_SYMBOL[kind]
    return UNIT_SYMBOL[kind]


def to_physical(name: str, value: float, *, pixel_size_um: float | None) -> float:
    """The value in the unit of `unit_symbol`: pixel areas × size², pixel lengths × size, else unchanged."""
    kind = unit_kind(name)
    if pixel_size_um:
        _check_pixel_size(pixel_size_um)
        if kind == "area":
            return float(value) * pixel_size_um ** 2
        if kind == "length":
            return float(value) * pixel_size_um
    return float(value)


def plain_number(value: float, *, digits: int = 3) -> str:
    """`digits` significant figures, thousands separators, never scientific notation: 1386.2 → "1,390".

    0.000123 → "0.000123"; −0.5 → "−0.5" (with a true minus sign); NaN/inf → "n/a".
    """
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    rounded = round(value, decimals)
    if decimals == 0:
        rounded = round(value, digits - 1 - magnitude)  # 1386.2 → 1390 (negative ndigits)
    text = f"{abs(rounded):,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("−" if rounded < 0 else "") + text


def format_value(name: str, value: float, *, pixel_size_um: float | None, digits: int = 3) -> str:
    """A feature value as a biologist reads it: "1,390 µm²", "12.3 µm", "0.213", "45°".

    Pixel areas and lengths are converted with `pixel_size_um` (None keeps pixels: "3,290 px²").
    Intensities stay on CellProfiler's 0–1 scale (say so with `INTENSITY_SCALE` once per view).
    """
    number = plain_number(to_physical(name, value, pixel_size_um=pixel_size_um), digits=digits)
    symbol = unit_symbol(name, pixel_size_um=pixel_size_um)
    if number == "n/a" or not symbol:
        return number
    return f"{number}{symbol}" if symbol in ("°", "%") else f"{number} {symbol}"


def format_pixels(name: str, value: float, *, digits: int = 3) -> str:
    """The same value in the pixels it was measured in ("3,290 px²"), for hover text; "" if it has no pixel form."""
    kind = unit_kind(name)
    if kind not in PIXEL_SYMBOL:
        return ""
    return f"{plain_number(value, digits=digits)} {PIXEL_SYMBOL[kind]}"


def scale_note(name: str) -> str:
    """One phrase on the feature's scale for captions and axis titles, e.g. "0–1 scale: pixel value / 255"."""
    kind = unit_kind(name)
    if kind == "intensity":
        return INTENSITY_SCALE
    if kind == "integrated intensity":
        return "sum over the object's pixels of the 0–1 intensity"
    if kind == "percent":
        return "% of the object's signal"
    if kind == "unitless":
        return "no unit"
    return ""


def _check_pixel_size(pixel_size_um: float) -> None:
    if not (isinstance(pixel_size_um, (int, float)) and math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number of micrometres per pixel; got {pixel_size_um!r}")
