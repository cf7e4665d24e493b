"""The kit's mmyolo adapter (Table 2: TPH-YOLOv5 on VisDrone), separate from the mmdet adapter
(``ugs.openmmlab``). Importing :mod:`ugs.yolo.tph` registers the TPH-YOLOv5 modules with
mmyolo's registry; nothing here is imported by the ``ugs`` core."""
