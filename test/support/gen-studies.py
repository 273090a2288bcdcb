#!/usr/bin/env python3
"""Writes small synthetic studies for the end-to-end tests (pydicom; Explicit VR Little Endian).

usage: gen-studies.py OUT_DIR SPEC_JSON
SPEC_JSON: a list of studies: {"patientId", "patientName", "issuer"?, "birthDate", "sex", "studyUid",
  "studyDate", "studyTime", "accession", "description", "series": [{"seriesUid", "modality",
  "number", "instances": N, "rows"?, "cols"?, "frames"?, "institution"?}]}
Writes OUT_DIR/<studyUid>/<seriesUid>/<n>.dcm and prints one line per file: path<TAB>sopInstanceUid.
"""
import json
import os
import sys

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out, spec = sys.argv[1], json.loads(sys.argv[2])
SOP = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "CR": "1.2.840.10008.5.1.4.1.1.1",
       "US": "1.2.840.10008.5.1.4.1.1.6.1"}
for st in spec:
    for se in st["series"]:
        d = os.path.join(out, st["studyUid"], se["seriesUid"])
        os.makedirs(d, exist_ok=True)
        for n in range(se["instances"]):
            sop = se.get("sopUids", [None] * se["instances"])[n] or generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = SOP[se["modality"]]
            meta.MediaStorageSOPInstanceUID = sop
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            if any(ord(c) > 127 for c in st["patientName"]):
                ds.SpecificCharacterSet = "ISO_IR 192"
            ds.SOPClassUID = SOP[se["modality"]]
            ds.SOPInstanceUID = sop
            ds.PatientName = st["patientName"]
            ds.PatientID = st["patientId"]
            if st.get("issuer"):
                ds.IssuerOfPatientID = st["issuer"]
            ds.PatientBirthDate = st.get("birthDate", "19700101")
            ds.PatientSex = st.get("sex", "O")
            ds.StudyInstanceUID = st["studyUid"]
            ds.StudyDate = st["studyDate"]
            ds.StudyTime = st.get("studyTime", "120000")
            ds.AccessionNumber = st.get("accession", "")
            ds.StudyDescription = st.get("description", "")
            ds.ReferringPhysicianName = st.get("referrer", "")
            ds.StudyID = st.get("studyId", "1")
            ds.SeriesInstanceUID = se["seriesUid"]
            ds.Modality = se["modality"]
            ds.SeriesNumber = se.get("number", 1)
            ds.SeriesDescription = se.get("description", se["modality"] + " series")
            ds.InstanceNumber = n + 1
            ds.BodyPartExamined = se.get("bodyPart", "CHEST")
            if se.get("institution"):
                ds.InstitutionName = se["institution"]
            rows, cols, frames = se.get("rows", 16), se.get("cols", 16), se.get("frames", 1)
            ds.Rows, ds.Columns = rows, cols
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            if frames > 1:
                ds.NumberOfFrames = frames
            if se.get("headerPad"):
                # A large private element before the pixel data: a header longer than usual.
                ds.add_new(0x00290010, "LO", "VNA TEST")
                ds.add_new(0x00291010, "OB", bytes(range(256)) * (se["headerPad"] // 256))
                ds.add_new(0x00291011, "LO", "after the pad")
            rng = np.random.default_rng(abs(hash((sop,))) % (2**32))
            ds.PixelData = rng.integers(0, 4095, size=rows * cols * frames, dtype=np.uint16).tobytes()
            path = os.path.join(d, f"{n + 1:04d}.dcm")
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.preamble = b"\0" * 128
            ds.save_as(path, write_like_original=False)
            print(f"{path}\t{sop}")
