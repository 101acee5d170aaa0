"""The whole country's provinces, districts and communes, for a visitor's home address.

A visitor may live anywhere in Vietnam, so the pickers use the national data of the
``vietnam-provinces`` package (the divisions before the 2025 merger, as in 2021), not
the city's admin-unit tree. Loaded once per process; a province's districts and
communes are served as one cached JSON document (``/api/places/{code}.json``) for the
pickers' small script. Also matches the free-text address of a chip ID card to codes.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources


@dataclass
class Place:
    code: str
    name: str
    parent: str | None
    children: list[str] = field(default_factory=list)


_NUMBER = re.compile(r"(\d+)")
PREFIXES = ("thanh pho", "tinh", "quan", "huyen", "thi xa", "thi tran", "phuong", "xa", "tp.", "tp", "q.", "p.",
            "tt.", "tx.", "h.")


def fold(text: str) -> str:
    """Lower case without diacritics: ``Phường Tân Định`` -> ``phuong tan dinh``."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


def short(name: str) -> str:
    """A unit's name without its kind: ``Quận 1`` -> ``1``, ``Thành phố Hồ Chí Minh`` -> ``ho chi minh``."""
    folded = fold(name)
    for prefix in PREFIXES:
        if folded.startswith(prefix + " ") or (prefix.endswith(".") and folded.startswith(prefix)):
            return folded[len(prefix):].strip()
    return folded


def _sort_key(name: str) -> list:
    return [int(part) if part.isdigit() else fold(part) for part in _NUMBER.split(name)]


class Places:
    def __init__(self, nested: list[dict]) -> None:
        self.by_code: dict[str, Place] = {}
        self.provinces: list[str] = []
        for province in sorted(nested, key=lambda p: _sort_key(p["name"])):
            pcode = str(province["code"])
            self.provinces.append(pcode)
            self.by_code["p" + pcode] = Place(pcode, province["name"], None)
            for district in sorted(province.get("districts") or (), key=lambda d: _sort_key(d["name"])):
                dcode = str(district["code"])
                self.by_code["p" + pcode].children.append(dcode)
                self.by_code["d" + dcode] = Place(dcode, district["name"], pcode)
                for ward in sorted(district.get("wards") or (), key=lambda w: _sort_key(w["name"])):
                    wcode = str(ward["code"])
                    self.by_code["d" + dcode].children.append(wcode)
                    self.by_code["c" + wcode] = Place(wcode, ward["name"], dcode)
        self._json: dict[str, tuple[bytes, str]] = {}

    # -- lookups -----------------------------------------------------------------------

    def province(self, code: str) -> Place | None:
        return self.by_code.get("p" + code)

    def district(self, code: str) -> Place | None:
        return self.by_code.get("d" + code)

    def commune(self, code: str) -> Place | None:
        return self.by_code.get("c" + code)

    def province_options(self) -> list[tuple[str, str]]:
        return [(code, self.by_code["p" + code].name) for code in self.provinces]

    def district_options(self, province: str | None) -> list[tuple[str, str]]:
        place = self.province(province or "")
        return [(c, self.by_code["d" + c].name) for c in place.children] if place else []

    def commune_options(self, district: str | None) -> list[tuple[str, str]]:
        place = self.district(district or "")
        return [(c, self.by_code["c" + c].name) for c in place.children] if place else []

    def consistent(self, province: str, district: str, commune: str) -> bool:
        """The commune lies in the district, which lies in the province."""
        c, d = self.commune(commune), self.district(district)
        return c is not None and d is not None and c.parent == district and d.parent == province

    def label(self, province: str, district: str, commune: str, street: str | None = None) -> str:
        parts = [street] if street else []
        for place in (self.commune(commune), self.district(district), self.province(province)):
            if place is not None:
                parts.append(place.name)
        return ", ".join(parts)

    # -- the pickers' data ---------------------------------------------------------------

    def province_json(self, code: str) -> tuple[bytes, str] | None:
        """The districts and communes of a province as compact JSON, and its ETag."""
        cached = self._json.get(code)
        if cached is not None:
            return cached
        place = self.province(code)
        if place is None:
            return None
        document = {"code": code, "name": place.name, "districts": [
            {"code": d, "name": self.by_code["d" + d].name, "communes": self.commune_options(d)}
            for d in place.children
        ]}
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        result = (body, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
        self._json[code] = result
        return result

    # -- a chip ID card's address ---------------------------------------------------------

    def match_address(self, text: str) -> tuple[str | None, str | None, str | None, str]:
        """Best effort: (province, district, commune, the rest) from ``..., ward, district, province``."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        province = district = commune = None
        if parts:
            wanted = short(parts[-1])
            province = next((c for c in self.provinces if short(self.by_code["p" + c].name) == wanted), None)
            if province is None and wanted in ("hcm", "tp hcm", "tphcm", "sai gon", "tp. hcm"):
                province = "79"
            if province is not None:
                parts.pop()
        if province is not None and parts:
            wanted = short(parts[-1])
            district = next((c for c in self.by_code["p" + province].children
                             if short(self.by_code["d" + c].name) == wanted), None)
            if district is not None:
                parts.pop()
        if district is not None and parts:
            wanted = short(parts[-1])
            commune = next((c for c in self.by_code["d" + district].children
                            if short(self.by_code["c" + c].name) == wanted), None)
            if commune is not None:
                parts.pop()
        return province, district, commune, ", ".join(parts)


@lru_cache(maxsize=1)
def load_places() -> Places:
    source = resources.files("vietnam_provinces") / "data" / "nested-divisions.json"
    return Places(json.loads(source.read_text(encoding="utf-8")))
