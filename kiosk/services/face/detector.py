"""Faces and eyes in a camera frame, found with the Haar cascades that OpenCV 4.x wheels ship.

Faces are searched on a copy scaled down to ``analysis_width`` (a face that fills a tenth
of a 640-pixel frame is still 32 pixels wide there); eyes only inside the one face found,
in the band between brows and nose, scaled so a face is at most 160 pixels wide. The eye
cascade is the one trained with and without glasses, because many residents wear them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiosk.errors import NoDevice

if TYPE_CHECKING:
    import numpy as np

FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye_tree_eyeglasses.xml"


@dataclass(frozen=True)
class Box:
    """A rectangle in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        """Vertical centre."""
        return self.y + self.h / 2

    def mirrored(self, width: int) -> "Box":
        """The same box in the left-right mirrored frame."""
        return Box(width - self.x - self.w, self.y, self.w, self.h)


@dataclass(frozen=True)
class Analysis:
    """What one frame shows: the faces (largest first) and, for a single face, how many eyes are open."""

    width: int
    height: int
    faces: tuple[Box, ...]
    eyes: int | None = None  # None: not looked for (no single face, or too small to tell)

    @property
    def face(self) -> Box | None:
        """The largest face, or None."""
        return self.faces[0] if self.faces else None


def cascade_path(name: str) -> str:
    """Path of one of OpenCV's bundled cascades. Raises NoDevice when this OpenCV has none."""
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    if not folder or not hasattr(cv2, "CascadeClassifier"):
        raise NoDevice(f"OpenCV {cv2.__version__} has no Haar cascades (the face step needs "
                       "opencv-python-headless 4.x)", device="camera")
    return folder + name


class HaarFaceDetector:
    """Frontal faces and open eyes with OpenCV's cascade classifiers. One instance per thread."""

    def __init__(self, analysis_width: int = 320, eye_face_min_px: int = 120) -> None:
        import cv2

        self.analysis_width = analysis_width
        self.eye_face_min_px = eye_face_min_px  # below this a face is too small to see its eyes
        self._faces = self._load(cv2, FACE_CASCADE)
        self._eyes = self._load(cv2, EYE_CASCADE)

    @staticmethod
    def _load(cv2: Any, name: str) -> Any:
        classifier = cv2.CascadeClassifier(cascade_path(name))
        if classifier.empty():
            raise NoDevice(f"OpenCV cascade {name} does not load", device="camera")
        return classifier

    def analyse(self, pixels: "np.ndarray", look_for_eyes: bool = True) -> Analysis:
        """Find the faces in an RGB frame and, when there is exactly one, count its open eyes."""
        import cv2

        height, width = pixels.shape[:2]
        gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        k = min(1.0, self.analysis_width / width)
        small = cv2.resize(gray, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else gray
        side = min(small.shape[:2])
        found = self._faces.detectMultiScale(small, scaleFactor=1.1, minNeighbors=4,
                                             minSize=(max(24, side // 8),) * 2)
        faces = sorted((Box(int(x / k), int(y / k), int(w / k), int(h / k)) for x, y, w, h in found),
                       key=lambda b: b.w * b.h, reverse=True)
        eyes = None
        if look_for_eyes and len(faces) == 1 and faces[0].w >= self.eye_face_min_px:
            eyes = self._open_eyes(gray, faces[0])
        return Analysis(width, height, tuple(faces), eyes)

    def _open_eyes(self, gray: "np.ndarray", face: Box) -> int:
        import cv2

        band = gray[face.y + face.h // 4:face.y + face.h * 11 // 20, face.x + face.w // 8:face.x + face.w * 7 // 8]
        k = min(1.0, 160 / face.w)
        if k < 1:
            band = cv2.resize(band, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        fw = face.w * k
        found = self._eyes.detectMultiScale(band, scaleFactor=1.1, minNeighbors=2,
                                            minSize=(int(fw / 9),) * 2, maxSize=(int(fw / 2.5),) * 2)
        return min(2, len(found))
