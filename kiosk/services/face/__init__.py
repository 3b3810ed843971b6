"""The face step (人证核验): live preview, guidance, automatic capture and liveness, without Kivy.

``detector`` finds faces and eyes (OpenCV's Haar cascades), ``guide`` turns what it finds
frame by frame into guidance, a liveness verdict and the moment to capture, and ``step``
runs both off the UI thread on the camera's stream and hands the screen preview frames.
"""
