import TorchNN
print("placeholder")
