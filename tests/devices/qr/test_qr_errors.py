import pytest

from devices.qr import errors


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.PayloadError, "qr_payload_invalid"),
        (errors.CrcError, "qr_crc_mismatch"),
        (errors.FrameNotImage, "frame_not_image"),
        (errors.FrameTooLarge, "frame_too_large"),
        (errors.FrameNoCode, "frame_no_code"),
        (errors.FrameMultipleCodes, "frame_multiple_codes"),
    ],
)
def test_each_error_keeps_its_stable_code(error, code):
    raised = error("message")
    assert raised.code == code
    assert isinstance(raised, errors.QrError)
    assert isinstance(raised, ValueError)


def test_crc_mismatch_is_a_payload_error_and_frame_errors_share_a_base():
    assert issubclass(errors.CrcError, errors.PayloadError)
    for error in (errors.FrameNotImage, errors.FrameTooLarge, errors.FrameNoCode):
        assert issubclass(error, errors.FrameError)
    assert issubclass(errors.FrameMultipleCodes, errors.FrameError)
