"""The nurse console: kiosk visits of a centre as the nurse beside the patient runs them."""
