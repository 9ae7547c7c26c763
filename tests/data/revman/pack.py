"""Zip the package folders ``make_packages.R`` wrote into Cochrane data packages.

    python tests/data/revman/pack.py /tmp/packages tests/data/revman

``nrt2018`` becomes ``nrt2018.zip`` in the version 1 layout of Fleiss1993.zip (a folder whose
``*-files/*-data/`` is an inner ``*-data.zip``); ``damico2009`` becomes ``damico2009.zip`` in
the version 2 layout (the ``*-analysis-data/`` and ``*-study-data/`` folders at the top).
Members get a fixed timestamp so that the zips are the same bytes on every run.
"""

import io
import sys
import zipfile
from pathlib import Path

STAMP = (2025, 1, 1, 0, 0, 0)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, STAMP)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _zip_folder(folder: Path, inner_data: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if inner_data and any(part.endswith("-data") and part != path.name
                                  for part in path.relative_to(folder).parts[:-1]):
                continue
            _add(archive, path.relative_to(folder).as_posix(), path.read_bytes())
        if inner_data:
            for data_dir in sorted(folder.rglob("*-data")):
                if data_dir.is_dir() and (data_dir.parent.name.endswith("-files")):
                    name = (data_dir.parent / f"{data_dir.name}.zip").relative_to(folder)
                    _add(archive, name.as_posix(), _zip_folder(data_dir, inner_data=False))
    return buffer.getvalue()


def main(source: str, target: str) -> None:
    src, dst = Path(source), Path(target)
    (dst / "nrt2018.zip").write_bytes(_zip_folder(src / "nrt2018", inner_data=True))
    (dst / "damico2009.zip").write_bytes(
        _zip_folder(src / "damico2009" / "CD000022-dataPackage", inner_data=False)
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
