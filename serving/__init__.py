"""Online predictor: a KServe model server for the sentiment classifier."""
